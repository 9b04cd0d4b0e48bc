import sys

from training.diffusion.train import main

sys.exit(main())
