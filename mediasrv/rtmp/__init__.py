"""Layer 1: RTMP as a sans-IO protocol core (no sockets, no asyncio, no clocks).

``RtmpConnection.receive_data(bytes) -> list[Event]``; commands such as
``accept_publish`` queue output; ``data_to_send()`` drains it. Modelled on h11/h2.
"""
