FROM no-such-image:1.0
