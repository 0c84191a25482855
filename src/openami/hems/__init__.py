"""The home side of Route B: the HEMS and its B-route link (an emulated Wi-SUN dongle)."""
