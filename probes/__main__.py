from probes.cli import main

main()
