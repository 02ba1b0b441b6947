/dev/fd/3: line 87: w/up: No such file or directory
