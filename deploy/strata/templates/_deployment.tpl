{{- /* A manager Deployment: the main one (shard "") or a shard's. */ -}}
{{- define "strata.managerDeployment" }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $.name }}
  namespace: {{ $.root.Release.Namespace }}
  labels: {{- include "strata.labels" $.root | nindent 4 }}
spec:
  replicas: {{ $.replicas }}
  selector:
    matchLabels:
      {{- if $.shard }}
      # Apart from the main Deployment's pods, which select on name strata.
      app.kubernetes.io/name: strata-shard
      strata.dev/shard: {{ $.shard | quote }}
      {{- else }}
      app.kubernetes.io/name: strata
      {{- end }}
      app.kubernetes.io/instance: {{ $.root.Release.Name }}
  template:
    metadata:
      labels:
        {{- if $.shard }}
        app.kubernetes.io/name: strata-shard
        app.kubernetes.io/instance: {{ $.root.Release.Name }}
        app.kubernetes.io/version: {{ $.root.Chart.AppVersion | quote }}
        app.kubernetes.io/managed-by: {{ $.root.Release.Service }}
        strata.dev/shard: {{ $.shard | quote }}
        {{- else }}
        {{- include "strata.labels" $.root | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: strata-manager
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: manager
          image: "{{ $.root.Values.image.repository }}:{{ $.root.Values.image.tag }}"
          imagePullPolicy: {{ $.root.Values.image.pullPolicy }}
          args:
            - manager
            - --metrics-addr=:{{ $.root.Values.metrics.port }}
            - --health-addr=:8081
            {{- if $.root.Values.dashboard.enabled }}
            - --dashboard-addr=:{{ $.root.Values.dashboard.port }}
            {{- range $.root.Values.dashboard.hosts }}
            - --dashboard-host={{ . }}
            {{- end }}
            {{- end }}
            - --leader-elect={{ $.root.Values.leaderElection }}
            {{- if $.shard }}
            - --shard={{ $.shard }}
            {{- end }}
            - --resync={{ $.root.Values.resync }}
            - --layer-timeout={{ $.root.Values.layerTimeout }}
            {{- range $.root.Values.packDirs }}
            - --packs={{ . }}
            {{- end }}
            - --pack-cache=/var/cache/strata/packs
            - --pack-cache-size={{ int64 $.root.Values.packCache.maxBytes }}
          volumeMounts:
            - {name: pack-cache, mountPath: /var/cache/strata/packs}
          ports:
            - {name: metrics, containerPort: {{ $.root.Values.metrics.port }}}
            - {name: health, containerPort: 8081}
            {{- if $.root.Values.dashboard.enabled }}
            - {name: dashboard, containerPort: {{ $.root.Values.dashboard.port }}}
            {{- end }}
          readinessProbe:
            httpGet: {path: /readyz, port: health}
          livenessProbe:
            httpGet: {path: /healthz, port: health}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          resources: {{- toYaml $.root.Values.resources | nindent 12 }}
      volumes:
        - name: pack-cache
          {{- if $.root.Values.packCache.persistentVolumeClaim }}
          persistentVolumeClaim: {claimName: {{ $.root.Values.packCache.persistentVolumeClaim }}}
          {{- else }}
          emptyDir: {sizeLimit: {{ $.root.Values.packCache.sizeLimit }}}
          {{- end }}
{{- end }}
