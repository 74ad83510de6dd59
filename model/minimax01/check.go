package minimax01

import "github.com/lightninglm/lightning/format/safetensors"

// CheckCheckpoint checks the tensors of ck against c as Load does (every
// tensor the config calls for is present with the right dtype and shape)
// without building a model, so a checkpoint can be judged by its headers.
func CheckCheckpoint(c *Config, ck *safetensors.Checkpoint) error {
	_, _, err := loadWeights(c, ck, nil)
	return err
}
