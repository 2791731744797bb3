from xtal_cli.cli import main

main()
