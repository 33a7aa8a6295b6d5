// Package packaging holds no code: it is the home of nfpm.yaml, the maintainer scripts
// and version.sh, which `make package` turns into dist/*.deb and dist/*.rpm, and of the
// tests that keep them honest. The installed tree itself is mirrored under rootfs/.
package packaging
