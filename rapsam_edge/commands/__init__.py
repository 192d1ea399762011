"""One module per rapsam-edge verb: argparse in, library calls out."""
