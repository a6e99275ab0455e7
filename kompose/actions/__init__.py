"""One module per command: each builds that command's Plan for one stack."""
