"""The AWS JSON 1.1 front door: SigV4 verification, dispatch and error rendering."""
