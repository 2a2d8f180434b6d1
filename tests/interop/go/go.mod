module trustca.invalid/interop

go 1.19
