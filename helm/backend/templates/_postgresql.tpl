{{/*
Bundled PostgreSQL: the superuser initialises the database, the backend connects as a role that owns it.
*/}}

{{/*
The Secret of the bundled PostgreSQL: POSTGRES_PASSWORD (the superuser's, read by the image's entrypoint on first
start only) and APP_PASSWORD (the backend's role). It outlives `helm uninstall` with the data volume.
*/}}
{{- define "backend.postgresql.secretName" -}}
{{- include "backend.postgresql.fullname" . }}
{{- end }}

{{/*
Where the PostgreSQL container sees that Secret (a volume: no password in its environment).
*/}}
{{- define "backend.postgresql.secretDir" -}}
/run/secrets/postgresql
{{- end }}

{{/*
The PersistentVolumeClaim the StatefulSet makes for its pod (`data-<name>-0`); helm never owns or deletes it.
*/}}
{{- define "backend.postgresql.claimName" -}}
{{- printf "data-%s-0" (include "backend.postgresql.fullname" .) }}
{{- end }}

{{/*
"true" when the live database was initialised by chart 0.1.0, where the backend's user was the superuser and no
separate role exists: its Secret has POSTGRES_PASSWORD but no APP_PASSWORD. Such a volume keeps running as it was
made (UID 999, that user as superuser); the init script never runs on an existing volume anyway.
*/}}
{{- define "backend.postgresql.legacy" -}}
{{- if include "backend.postgresql.enabled" . }}
{{- $live := lookup "v1" "Secret" .Release.Namespace (include "backend.postgresql.secretName" .) }}
{{- $data := (get $live "data") | default dict }}
{{- if and (hasKey $data "POSTGRES_PASSWORD") (not (hasKey $data "APP_PASSWORD")) }}true{{ end }}
{{- end }}
{{- end }}

{{/*
UID and GID of the database pods: postgresql.runAsUser/runAsGroup, or 999 (chart 0.1.0's) for a legacy volume,
whose files belong to that user.
*/}}
{{- define "backend.postgresql.uid" -}}
{{- if include "backend.postgresql.legacy" . }}999{{ else }}{{ .Values.postgresql.runAsUser }}{{ end }}
{{- end }}

{{- define "backend.postgresql.gid" -}}
{{- if include "backend.postgresql.legacy" . }}999{{ else }}{{ .Values.postgresql.runAsGroup }}{{ end }}
{{- end }}
