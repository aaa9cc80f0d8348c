from swift_ext.cli import main

main()
