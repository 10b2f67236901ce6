"""`python -m autoalign ...`, which is also how a launcher starts it:
`accelerate launch --multi_gpu --num_processes 2 -m autoalign run recipe.yaml`."""

from autoalign.cli import main

main()
