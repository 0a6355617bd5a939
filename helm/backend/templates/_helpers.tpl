{{/*
Expand the name of the chart.
*/}}
{{- define "backend.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name (release `todo-backend` -> `todo-backend`).
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "backend.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "backend.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels shared by every object of the release; `backend.labels` / `backend.postgresql.labels` add the component.
*/}}
{{- define "backend.commonLabels" -}}
helm.sh/chart: {{ include "backend.chart" . }}
app.kubernetes.io/name: {{ include "backend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/part-of: todo-chatbot
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels of the backend API objects.
*/}}
{{- define "backend.labels" -}}
{{ include "backend.commonLabels" . }}
app.kubernetes.io/component: backend
{{- end }}

{{/*
Selector labels of the backend API pods. The component keeps the database pods out of the API Service.
*/}}
{{- define "backend.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: backend
{{- end }}

{{/*
Name of the backend API Service: the DNS name the frontend uses (contract: `todo-backend`).
*/}}
{{- define "backend.serviceName" -}}
{{- default (include "backend.fullname" .) .Values.service.name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the service account to use.
*/}}
{{- define "backend.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "backend.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference; `image.tag` is required (images are tagged by content hash, never `latest`).
*/}}
{{- define "backend.image" -}}
{{- $tag := required "image.tag is required: set it to the backend image's tag (e.g. --set image.tag=<tag>); `cargo xtask deploy` sets it to the image's content hash" .Values.image.tag }}
{{- if eq (toString $tag) "latest" }}
{{- fail "image.tag must not be \"latest\": a moving tag can shadow a changed image; use the image's content-hash tag" }}
{{- end }}
{{- printf "%s:%s" .Values.image.repository (toString $tag) }}
{{- end }}

{{/*
Name of the Secret holding DATABASE_URL, AUTH_SECRET and OPENAI_API_KEY (the user's existingSecret, or ours).
*/}}
{{- define "backend.secretName" -}}
{{- default (include "backend.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
"true" when the bundled PostgreSQL is deployed: enabled and no external database URL given.
*/}}
{{- define "backend.postgresql.enabled" -}}
{{- if and .Values.postgresql.enabled (not .Values.externalDatabase.url) }}true{{ end }}
{{- end }}

{{/*
Checks combinations of values that the schema cannot express; rendered (as nothing) by the Deployment.
*/}}
{{- define "backend.validate" -}}
{{- if and (not .Values.postgresql.enabled) (not .Values.externalDatabase.url) (not .Values.secrets.existingSecret) }}
{{- fail "postgresql.enabled=false needs a database: set externalDatabase.url (e.g. your Neon URL), or secrets.existingSecret naming a Secret with DATABASE_URL, or re-enable the bundled PostgreSQL" }}
{{- end }}
{{- if and .Values.secrets.existingSecret (include "backend.postgresql.enabled" .) (not .Values.postgresql.auth.password) }}
{{- fail "secrets.existingSecret with the bundled PostgreSQL needs postgresql.auth.password, so the DATABASE_URL in your Secret can match the database's password" }}
{{- end }}
{{- end }}

{{/*
Bundled PostgreSQL: names and labels.
*/}}
{{- define "backend.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "backend.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "backend.postgresql.headlessName" -}}
{{- printf "%s-hl" (include "backend.postgresql.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "backend.postgresql.labels" -}}
{{ include "backend.commonLabels" . }}
app.kubernetes.io/component: database
{{- end }}

{{- define "backend.postgresql.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: database
{{- end }}

{{/*
Pod security context of the app pods and of the `helm test` Pod: the image's user (contracts: USER 10001:10001).
One definition, so the test Pod can never run with less than the workload it tests.
*/}}
{{- define "backend.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Container security context shared by every container of the chart (the pod sets the user).
*/}}
{{- define "backend.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Checksum of the values that feed the Secret. Generated values are kept across upgrades (lookup), so hashing the
inputs rather than the rendered Secret rolls the pods exactly when the user changes a secret value.
*/}}
{{- define "backend.secretChecksum" -}}
{{- $in := dict "secrets" .Values.secrets "externalDatabase" .Values.externalDatabase "auth" .Values.postgresql.auth "bundled" (include "backend.postgresql.enabled" .) }}
{{- toJson $in | sha256sum }}
{{- end }}
