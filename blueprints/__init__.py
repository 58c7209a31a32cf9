"""One module per blueprint, each exporting `bp`."""
