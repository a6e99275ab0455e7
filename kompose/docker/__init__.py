"""The Docker Engine: exec streaming, finding containers, the transport choice, the helper container."""
