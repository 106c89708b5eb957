package settings

//go:generate go run ../cmd/gen-settings-docs -root ../..
