module github.com/ballast-os/ballast

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/beevik/ntp v1.5.0
	github.com/insomniacslk/dhcp v0.0.0-20231206064809-8c70d406f6d2
	github.com/klauspost/compress v1.18.5
	github.com/mdlayher/packet v1.1.2
	github.com/spdx/tools-golang v0.5.7
	github.com/u-root/u-root v0.16.0
	github.com/ulikunitz/xz v0.5.17
	github.com/vishvananda/netlink v1.3.1
	github.com/vishvananda/netns v0.0.5
	golang.org/x/net v0.47.0
	golang.org/x/sys v0.50.0
)

require (
	github.com/anchore/go-struct-converter v0.1.0 // indirect
	github.com/josharian/native v1.1.0 // indirect
	github.com/mdlayher/socket v0.5.1 // indirect
	golang.org/x/sync v0.18.0 // indirect
)

require (
	github.com/ProtonMail/go-crypto v1.5.2
	github.com/cloudflare/circl v1.6.3 // indirect
	github.com/dustin/go-humanize v1.0.1 // indirect
	github.com/pierrec/lz4/v4 v4.1.26 // indirect
	github.com/u-root/uio v0.0.0-20240224005618-d2acac8f3701 // indirect
	golang.org/x/crypto v0.45.0 // indirect
)
