from twinhub.cli.main import main

main()
