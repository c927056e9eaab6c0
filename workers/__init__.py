"""Dramatiq workers that apply tasks to Odoo. Start them the ordinary Dramatiq way:
``dramatiq workers.actors``."""
