// A go-redis (v9) client of a redis-ha-agent group: it asks the sentinels for
// the master and follows it through failovers.
//
//	REDIS_PASSWORD="$(cat /etc/redis-ha/password)" go run go-redis.go
//
// Every box's sentinel is listed, the master name is cluster.name ("main"),
// and the one password of /etc/redis-ha/password serves redis and the
// sentinels alike.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	rdb := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:       "main",
		SentinelAddrs:    []string{"10.0.0.11:26379", "10.0.0.12:26379", "10.0.0.13:26379"},
		Password:         os.Getenv("REDIS_PASSWORD"),
		SentinelPassword: os.Getenv("REDIS_PASSWORD"),
		// ReadTimeout below DialTimeout. With go-redis's defaults (both 5 s) the
		// client keeps asking the sentinel that answered it first and never
		// drops one that stops answering (go-redis#3652): when that sentinel's
		// box is powered off or cut away, the client sees no master until the
		// box is back, however fast the group fails over. A 1 s ReadTimeout
		// also bounds a write sent to a master that went silent.
		DialTimeout:  2 * time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	})
	defer rdb.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Set(ctx, "hello", "world", 0).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "set:", err)
		os.Exit(1)
	}
	v, err := rdb.Get(ctx, "hello").Result()
	if err != nil {
		fmt.Fprintln(os.Stderr, "get:", err)
		os.Exit(1)
	}
	fmt.Println("hello =", v)
}
