package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/redis-ha-agent/redis-ha-agent/agent/config"
)

// The control socket lets the CLI ask the running agent to act (switchover).
// It is a Unix socket in the runtime directory, mode 0600: only root, the
// agent's own user, can drive the agent.
func controlPath(cfg *config.Config) string { return filepath.Join(cfg.Node.RunDir, "agent.sock") }

type controlReply struct {
	Result  *SwitchoverResult `json:"result,omitempty"`
	Message string            `json:"message,omitempty"` // what the CLI prints
	Error   string            `json:"error,omitempty"`
	Refused bool              `json:"refused,omitempty"`
}

// serveControl serves the control socket until ctx ends; it returns once the
// server has stopped.
func (n *node) serveControl(ctx context.Context, cfg *config.Config, log *slog.Logger) {
	mux := http.NewServeMux()
	reply := controlReplier(log)
	mux.HandleFunc("POST /switchover", func(w http.ResponseWriter, r *http.Request) {
		res, err := n.requestSwitchover(r.Context(), r.URL.Query().Get("to"))
		reply(w, "switchover", controlReply{Result: &res, Message: fmt.Sprintf("switchover: %s -> %s in %s (writes paused %s)",
			res.From, res.To, res.Took.Round(time.Millisecond), res.Paused.Round(time.Millisecond))}, err)
	})
	mux.HandleFunc("POST /drain", func(w http.ResponseWriter, r *http.Request) {
		msg, err := n.requestOp(r.Context(), n.drainHere)
		reply(w, "drain", controlReply{Message: msg}, err)
	})
	mux.HandleFunc("POST /undrain", func(w http.ResponseWriter, r *http.Request) {
		msg, err := n.requestOp(r.Context(), n.undrainHere)
		reply(w, "undrain", controlReply{Message: msg}, err)
	})
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, r *http.Request) {
		msg, err := n.requestRestart(r.Context(), r.URL.Query().Get("pending") == "true")
		reply(w, "restart", controlReply{Message: msg}, err)
	})
	serveSocket(ctx, controlPath(cfg), mux, log)
}

// controlReplier writes a control reply, or the error of a refused or
// failed request.
func controlReplier(log *slog.Logger) func(w http.ResponseWriter, what string, reply controlReply, err error) {
	return func(w http.ResponseWriter, what string, reply controlReply, err error) {
		if err != nil {
			reply = controlReply{Error: err.Error(), Refused: errors.Is(err, errRefused)}
			log.Warn(what+" failed", "err", err)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(reply)
	}
}

// serveSocket serves mux on the control socket at path until ctx ends.
func serveSocket(ctx context.Context, path string, mux *http.ServeMux, log *slog.Logger) {
	_ = os.Remove(path) // a socket left by a killed agent
	l, err := net.Listen("unix", path)
	if err != nil {
		log.Warn("control socket unavailable: switchover from the CLI will not work", "err", err)
		return
	}
	if err := os.Chmod(path, 0o600); err != nil {
		log.Warn("control socket", "err", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("control socket", "err", err)
	}
	<-done
	_ = os.Remove(path)
}

// requestSwitchover hands a switchover to the loop and waits for its result.
func (n *node) requestSwitchover(ctx context.Context, to string) (SwitchoverResult, error) {
	var res SwitchoverResult
	_, err := n.requestOp(ctx, func(ctx context.Context) (string, error) {
		var err error
		res, err = n.switchover(ctx, to)
		return "", err
	})
	return res, err
}

// switchoverCmd is `redis-ha-agent switchover [--to HOST[:PORT]]`: it asks the
// local agent, which drives the whole group.
func switchoverCmd(ctx context.Context, path, to string, asJSON bool, out io.Writer) error {
	cfg, err := config.Load(path, config.DefaultEnv())
	if err != nil {
		return err
	}
	reply, err := controlCall(ctx, cfg, "/switchover?to="+url.QueryEscape(to), time.Minute)
	if asJSON {
		// One object whatever happened, for a script to read: the
		// result, or the error and whether it was a refusal (nothing
		// changed); the exit status says the same.
		reply.Message = ""
		if err != nil && reply.Error == "" {
			reply.Error = err.Error()
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(reply); jerr != nil {
			return jerr
		}
		if err != nil {
			return errUnhealthy // already reported
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("switchover: %w", err)
	}
	fmt.Fprintln(out, reply.Message)
	return nil
}

// controlCall posts to the local agent's control socket and returns its
// reply; an error the agent reports is returned as such.
func controlCall(ctx context.Context, cfg *config.Config, path string, timeout time.Duration) (controlReply, error) {
	sock := controlPath(cfg)
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var reply controlReply
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://agent"+path, nil)
	if err != nil {
		return reply, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply, fmt.Errorf("is the agent running? %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return reply, fmt.Errorf("bad reply from the agent: %w", err)
	}
	if reply.Error != "" {
		return reply, errors.New(reply.Error)
	}
	return reply, nil
}
