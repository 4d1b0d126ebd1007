"""StayKey: keypad PINs on Nuki smart locks for short-term rental guests.

Shared code of every Lambda function, shipped as the `staykey` layer (/opt/python/staykey).
"""

__version__ = "0.1.0"
