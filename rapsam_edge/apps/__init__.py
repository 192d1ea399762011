"""What the runtime commands show (``commands.demo``, ``commands.run``): drawing, video and image
handling, timings; torch-free."""
