package cli

import (
	"bytes"
	"encoding/json"

	yaml3 "go.yaml.in/yaml/v3"
)

// marshalOrderedYAML renders v as block YAML with fields in declaration
// order (name first, values last), where sigs.k8s.io/yaml would sort them.
// JSON is YAML, so the JSON encoding is parsed into a node tree that keeps
// the order, and its flow and quoting styles are cleared so the encoder
// picks plain block style and quotes only where YAML needs it.
func marshalOrderedYAML(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var n yaml3.Node
	if err := yaml3.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	clearStyle(&n)
	var b bytes.Buffer
	enc := yaml3.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

func clearStyle(n *yaml3.Node) {
	n.Style = 0
	for _, c := range n.Content {
		clearStyle(c)
	}
}
