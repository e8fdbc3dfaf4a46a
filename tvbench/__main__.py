from tvbench.cli import main

main()
