{{/*
NetworkPolicy helpers. Ports are derived from the URLs the pods use, so a policy cannot disagree with the
configuration it protects.
*/}}

{{/*
Selector labels of this chart's `helm test` Pod (its labels: the common ones + component `test`).
*/}}
{{- define "backend.test.selectorLabels" -}}
app.kubernetes.io/name: {{ include "backend.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{- end }}

{{/*
The TCP port a URL connects to: the one it names, else its scheme's default (https 443, http 80, postgres 5432).
Regular expressions, not urlParse: a parse error would print the URL, and a database URL holds a password.
*/}}
{{- define "backend.urlPort" -}}
{{- $rest := regexReplaceAll "^[A-Za-z][A-Za-z0-9+.-]*://" . "" }}
{{- $hostport := regexReplaceAll "^.*@" (regexReplaceAll "[/?#].*$" $rest "") "" }}
{{- $port := regexFind ":[0-9]+$" $hostport | trimPrefix ":" }}
{{- if $port }}{{ $port }}
{{- else if hasPrefix "https://" . }}443
{{- else if hasPrefix "http://" . }}80
{{- else }}5432
{{- end }}
{{- end }}

{{/*
Egress rule for DNS (UDP and TCP 53) to the cluster DNS pods.
*/}}
{{- define "backend.networkPolicy.dnsEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns.peers | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}
