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
	"slices"
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
// keep its unit out of the way too. man-db reads the package's man pages
// (and lets systemd-analyze verify check the unit's Documentation=).
var DefaultImage = ImageSpec{
	Suite: "bookworm",
	Packages: []string{
		"systemd", "systemd-sysv", "dbus", "iproute2", "procps", "man-db",
		"redis-server", "redis-tools", "redis-sentinel",
	},
}

// SuiteEnv names the Debian suite of the boxes: bookworm (Debian 12, Redis
// 7.0) when unset, trixie (Debian 13: Redis 8.0, and Valkey 8.1 beside it).
const SuiteEnv = "RHA_BOX_SUITE"

// Suite is the suite SuiteEnv selects.
func Suite() string {
	if s := os.Getenv(SuiteEnv); s != "" {
		return s
	}
	return DefaultImage.Suite
}

// ImageFor is DefaultImage on another suite: the same packages, that
// suite's versions.
func ImageFor(suite string) ImageSpec {
	spec := DefaultImage
	spec.Packages = slices.Clone(DefaultImage.Packages)
	spec.Suite = suite
	return spec
}

// ValkeyImage is a box with Debian's Valkey (server, tools and sentinel)
// instead of Redis; false on a suite that packages no Valkey (bookworm has
// it only in backports).
func ValkeyImage(suite string) (ImageSpec, bool) {
	if suite == "bookworm" || suite == "bullseye" {
		return ImageSpec{}, false
	}
	return ImageSpec{Suite: suite, Packages: []string{
		"systemd", "systemd-sysv", "dbus", "iproute2", "procps", "man-db",
		"valkey-server", "valkey-tools", "valkey-sentinel",
	}}, true
}

// BothImage is a box with Debian's Redis and Valkey installed side by side,
// as Debian 13 allows; false where ValkeyImage is.
func BothImage(suite string) (ImageSpec, bool) {
	v, ok := ValkeyImage(suite)
	if !ok {
		return v, false
	}
	v.Packages = append(v.Packages, "redis-server", "redis-tools", "redis-sentinel")
	return v, true
}

// distroUnits are the redis and valkey units of Debian's packages, disabled
// in an image where they are installed.
var distroUnits = []string{"redis-server.service", "redis-sentinel.service", "valkey-server.service", "valkey-sentinel.service"}

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
	// Only the units the image has: a Valkey image has no redis-server unit.
	// (A Redis image disables exactly what recipe 2 did.)
	disable := []string{"disable"}
	for _, u := range distroUnits {
		if _, err := os.Stat(filepath.Join(root, "usr/lib/systemd/system", u)); err == nil {
			disable = append(disable, u)
		} else if _, err := os.Stat(filepath.Join(root, "lib/systemd/system", u)); err == nil {
			disable = append(disable, u)
		}
	}
	if out, err := exec.CommandContext(ctx, "chroot", append([]string{root, "systemctl"}, disable...)...).CombinedOutput(); err != nil {
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
