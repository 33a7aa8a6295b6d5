package sentinel

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Server is what a redis-server or sentinel says of its own process (INFO
// server): enough to know a running one as this box's own when its pid file
// is gone, and to adopt it.
type Server struct {
	PID        int    // process_id
	ConfigFile string // config_file: the file it was started with
	RunID      string // run_id: new at every start
}

// Server asks the redis-server for its INFO server.
func (r *Redis) Server(ctx context.Context) (Server, error) {
	return serverInfo(ctx, r.c)
}

// Server asks the sentinel for its INFO server.
func (s *Sentinel) Server(ctx context.Context) (Server, error) {
	return serverInfo(ctx, s.c)
}

func serverInfo(ctx context.Context, c interface {
	Process(context.Context, redis.Cmder) error
}) (Server, error) {
	cmd := redis.NewStringCmd(ctx, "info", "server")
	if err := c.Process(ctx, cmd); err != nil {
		return Server{}, fmt.Errorf("info server: %w", err)
	}
	return parseServer(cmd.Val())
}

func parseServer(info string) (Server, error) {
	var s Server
	for l := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(l), ":")
		if !ok {
			continue
		}
		switch k {
		case "process_id":
			pid, err := strconv.Atoi(v)
			if err != nil {
				return Server{}, fmt.Errorf("info server: process_id %q", v)
			}
			s.PID = pid
		case "config_file":
			s.ConfigFile = v
		case "run_id":
			s.RunID = v
		}
	}
	if s.PID == 0 {
		return Server{}, fmt.Errorf("info server: no process_id")
	}
	return s, nil
}
