{{- define "hubproxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "hubproxy.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "hubproxy.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hubproxy.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "hubproxy.fullname" .) -}}
{{- end -}}

{{- define "hubproxy.hasSecret" -}}
{{- if or .Values.secrets.existingSecret .Values.secrets.upstreamToken .Values.secrets.s3AccessKeyId .Values.secrets.s3SecretAccessKey -}}true{{- end -}}
{{- end -}}

{{- define "hubproxy.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "hubproxy.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "hubproxy.claimName" -}}
{{- .Values.persistence.existingClaim | default (include "hubproxy.fullname" .) -}}
{{- end -}}

{{- /* The bundled PostgreSQL (postgresql.enabled, trials only). Its pods carry a name label of
their own, so no selector of hubproxy's (Deployment, Service, PDB) ever matches them. */}}
{{- define "hubproxy.postgresqlName" -}}
{{- printf "%s-postgresql" (include "hubproxy.fullname" . | trunc 52 | trimSuffix "-") -}}
{{- end -}}

{{- define "hubproxy.postgresqlSelectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-postgresql
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "hubproxy.hasDatabase" -}}
{{- if or .Values.settings.database_url .Values.postgresql.enabled -}}true{{- end -}}
{{- end -}}
