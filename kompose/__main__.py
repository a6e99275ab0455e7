from kompose.cli import main

main()
