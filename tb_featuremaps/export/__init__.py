"""Pictures for papers and posts from a logdir: matplotlib figures, contact sheets, GIFs, and the ``tb-featuremaps`` command."""
