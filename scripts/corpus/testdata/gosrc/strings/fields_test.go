package strings

// TestOnly is in a test file and must be skipped.
func TestOnly() {}
