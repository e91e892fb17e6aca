{{- define "strata-agent.labels" -}}
app.kubernetes.io/name: strata-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "strata-agent.joinSecret" -}}
{{- .Values.joinTokenSecret | default "strata-agent-join" -}}
{{- end }}
