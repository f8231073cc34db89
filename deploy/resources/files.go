package resources

import (
	"os"
	"path/filepath"
)

// ClusterReplicas are the replicas of every stream and bucket on the three-node cluster the
// NACK resources are written for (`fsctl setup --replicas 3` applies the same).
const ClusterReplicas = 3

// Paths of the generated files, relative to the deploy directory.
const (
	NACKFile      = "nack/jetstream.yaml"
	TerraformFile = "terraform/jetstream/resources.tf"
)

// GeneratedFiles maps each generated file's path (relative to deploy/) to its content.
type GeneratedFiles map[string][]byte

// Files renders the definitions of the streams directory dir: NACK resources with
// replicas, and the Terraform module's resources.
func Files(dir string, replicas int) (GeneratedFiles, error) {
	defs, err := Load(dir)
	if err != nil {
		return nil, err
	}
	withR := make([]Definition, len(defs))
	for i, d := range defs {
		withR[i] = d.WithReplicas(replicas)
	}
	nack, err := NACK(withR)
	if err != nil {
		return nil, err
	}
	tf, err := Terraform(defs)
	if err != nil {
		return nil, err
	}
	return GeneratedFiles{NACKFile: nack, TerraformFile: tf}, nil
}

// Write writes the files under deployDir.
func (g GeneratedFiles) Write(deployDir string) error {
	for name, b := range g {
		p := filepath.Join(deployDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
