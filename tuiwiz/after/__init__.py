"""After training: evaluate a finished run, try it, export it. No UI code here (the TUI's Try it
screen calls tuiwiz.after.generate from a worker thread); heavy imports stay inside functions."""
