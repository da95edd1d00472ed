module dejavu

go 1.26.8
