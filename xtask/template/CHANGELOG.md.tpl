# Changelog of {{crate}}

All notable changes to this crate. The format follows
[Keep a Changelog](https://keepachangelog.com/en/1.1.0/) and the crate
follows [Semantic Versioning](https://semver.org/); release-plz writes the
entries from the commits that touch this crate (see docs/releasing.md).

## [Unreleased]

### Added

- First release: the CSAL `{{name}}` provider.
