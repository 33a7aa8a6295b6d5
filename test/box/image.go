package box

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// DefaultCache is where images are kept between runs.
const DefaultCache = "/var/cache/redis-ha-bench"

// ImageSpec says what a box image holds.
type ImageSpec struct {
	Suite    string   // Debian suite for debootstrap
	Packages []string // installed on top of minbase
}

// DefaultImage is a Debian 12 box with Debian's redis preinstalled, so a box
// can `apt install` the agent's package without any network. redis-sentinel
// is there because the operators the product is for have it: the package must
// keep its unit out of the way too.
var DefaultImage = ImageSpec{
	Suite: "bookworm",
	Packages: []string{
		"systemd", "systemd-sysv", "dbus", "iproute2", "procps",
		"redis-server", "redis-tools", "redis-sentinel",
	},
}

// imageRecipe is bumped whenever customize changes, so an image built by an
// older recipe is not reused.
const imageRecipe = "2"

// key names a spec's image in the cache: same spec and recipe, same image.
func (s ImageSpec) key() string {
	h := sha256.New()
	fmt.Fprintf(h, "recipe %s\nsuite %s\npackages %s\n", imageRecipe, s.Suite, strings.Join(s.Packages, ","))
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// EnsureImage returns the directory of spec's image under cache, building it
// first if it is not there. It is built beside its final place and renamed
// into it, so a half-built image (an interrupted debootstrap) is never used.
// The caller holds the bench lock.
func EnsureImage(ctx context.Context, cache string, spec ImageSpec, logf func(string, ...any)) (string, error) {
	final := filepath.Join(cache, "image-"+spec.key())
	if _, err := os.Stat(filepath.Join(final, "usr/lib/systemd/systemd")); err == nil {
		return final, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	// An interrupted build's leftovers: the lock says no one builds now.
	stale, _ := filepath.Glob(filepath.Join(cache, tmpImagePrefix+"*"))
	for _, d := range stale {
		removeBuildDir(d)
	}
	tmp, err := os.MkdirTemp(cache, tmpImagePrefix)
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	defer removeBuildDir(tmp)
	root := filepath.Join(tmp, "root")
	logPath := filepath.Join(cache, "debootstrap.log")
	logf("box: building image %s with debootstrap (about a minute; log in %s)", filepath.Base(final), logPath)
	start := time.Now()
	args := []string{"--variant=minbase", "--include=" + strings.Join(spec.Packages, ","), spec.Suite, root}
	if out, err := runLogged(ctx, logPath, "debootstrap", args...); err != nil {
		return "", fmt.Errorf("image: debootstrap: %w\n%s", err, out)
	}
	if err := customize(ctx, root); err != nil {
		return "", err
	}
	if err := os.Rename(root, final); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	logf("box: image built in %s", time.Since(start).Round(time.Second))
	return final, nil
}

// customize makes the debootstrapped tree a box image: Debian's redis units
// disabled so only the package under test decides about them, no identity of
// its own (each box writes its hostname and machine-id at creation), and a
// persistent journal so a box's previous boot can be read after a power-off.
func customize(ctx context.Context, root string) error {
	if out, err := exec.CommandContext(ctx, "chroot", root, "systemctl", "disable",
		"redis-server.service", "redis-sentinel.service").CombinedOutput(); err != nil {
		return fmt.Errorf("image: disable debian's redis units: %w\n%s", err, out)
	}
	for _, f := range []string{"etc/hostname", "etc/machine-id", "var/lib/dbus/machine-id"} {
		if err := os.Remove(filepath.Join(root, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("image: %w", err)
		}
	}
	if err := os.Symlink("/etc/machine-id", filepath.Join(root, "var/lib/dbus/machine-id")); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var/log/journal"), 0o2755); err != nil {
		return fmt.Errorf("image: %w", err)
	}
	// A box never downloads: the packages debootstrap fetched only cost space.
	debs, _ := filepath.Glob(filepath.Join(root, "var/cache/apt/archives/*.deb"))
	for _, d := range debs {
		if err := os.Remove(d); err != nil {
			return fmt.Errorf("image: %w", err)
		}
	}
	return nil
}

const tmpImagePrefix = ".build-"

// removeBuildDir removes a failed or finished build directory, unmounting
// what debootstrap left mounted in it first when it was interrupted.
func removeBuildDir(dir string) {
	for _, m := range mountsUnder(dir) {
		unmount(m)
	}
	os.RemoveAll(dir)
}

// runLogged runs a command with its output appended to logPath and returns
// the log's tail on failure.
func runLogged(ctx context.Context, logPath, name string, args ...string) (string, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(logPath)
		return tail(string(b), 20), err
	}
	return "", nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
