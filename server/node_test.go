package server

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestNodeClient runs clienttest/client.test.mjs (the official OpenAI Node
// client: completions and chat, streamed and not, stop strings, errors)
// against a server on loopback. It needs node and clienttest/node_modules
// (`npm ci --prefix server/clienttest`) and skips without them.
func TestNodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat("clienttest/node_modules/openai"); err != nil {
		t.Skip("clienttest/node_modules is missing: run npm ci --prefix server/clienttest")
	}
	_, ts := newTestServer(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "clienttest/client.test.mjs")
	cmd.Env = append(os.Environ(), "DEJAVU_BASE_URL="+ts.URL+"/v1", "DEJAVU_MODEL="+model)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("node --test:\n%s", out)
}
