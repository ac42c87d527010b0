"""`python -m tuiwiz.demo`: write the bundled dataset again (after changing its recipe)."""

from tuiwiz.demo.data import write_demo_dataset

for written in write_demo_dataset():
    print(written)
