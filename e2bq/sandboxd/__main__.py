from e2bq.cli import main

main(["sandboxd", *__import__("sys").argv[1:]])
