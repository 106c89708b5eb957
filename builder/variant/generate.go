package variant

//go:generate go run ../cmd/gen-variant-docs -root ../..
