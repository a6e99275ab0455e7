from kompose.cli.app import main

main()
