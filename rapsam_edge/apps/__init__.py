"""What the runtime commands show (``commands.demo``, ``commands.run``): drawing, video and image
handling, timings; and what every command checks of its arguments (``checks``); torch-free."""
