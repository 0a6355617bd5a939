{{/*
checkov.io/skip annotations (read by `checkov --framework kubernetes` on `helm template` output). Only the two checks
that do not fit an image loaded into the cluster are skipped; each skip gives its reason (no "=" in a reason:
checkov splits on it). The argument is the object's imagePullPolicy.
*/}}
{{- define "backend.checkov.imageSkips" -}}
checkov.io/skip1: "CKV_K8S_43=images are referenced by tag so that a copy loaded into the cluster (minikube image load) runs without a registry; the app images' tags are content hashes and third-party images are pinned versions, so a tag never changes meaning"
{{- if ne . "Always" }}
checkov.io/skip2: "CKV_K8S_15=IfNotPresent on purpose: a loaded image must not be pulled again (there may be no registry to pull from), and its tag never changes meaning"
{{- end }}
{{- end }}
