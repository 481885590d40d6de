"""Recording: the recorder, its files, VOD routes and the creator's choice."""
