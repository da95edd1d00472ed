package model

import "fmt"

// Accessors for other backends (the CUDA backend in package cuda), which
// mirror this package's forward pass on their own devices.

// RopeTables returns the rotary tables the forward pass uses for c: cos and
// sin of every position's angles, maxCtx × HeadDim/2 each, in float32 as
// Hugging Face computes them, with the configured frequency scaling.
func RopeTables(c Config, maxCtx int) (cos, sin []float32) { return ropeTables(c, maxCtx) }

// SyntheticConfig is the configuration of a synthetic shape (see
// SyntheticNames), for backends that build its random weights themselves.
func SyntheticConfig(name string) (Config, error) {
	c, ok := synthetic[name]
	if !ok {
		return Config{}, fmt.Errorf("model: no synthetic shape %q (have %v)", name, SyntheticNames())
	}
	return c, nil
}
