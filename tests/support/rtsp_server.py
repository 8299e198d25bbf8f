#!/usr/bin/python3
"""A loopback RTSP server for faceflow's tests and demos: GStreamer's
gst-rtsp-server (Debian: gir1.2-gst-rtsp-server-1.0, python3-gi), serving
MP4 files (H.264 or H.265, by "h265" in the name) in real time by their
timestamps (or, for the file `pattern:mjpeg`, a live MJPEG test pattern), optionally behind basic or digest authentication.

    rtsp_server.py --port 8554 --mount /h264=models/demo/rtsp-h264.mp4 \
        --mount /h265=models/demo/rtsp-h265.mp4 [--user u --password p --auth digest]
        [--loss 0.05] [--no-repeat-params]

--loss drops that share of the RTP packets (GStreamer's `identity
drop-probability` after the payloader: every client of the shared media
loses the same packets, as behind one lossy link). --no-repeat-params sends
the parameter sets only where the stream has them (x264: at key frames) and
in the SDP, as most cameras do, instead of before every key frame.

Prints "ready <port>" once listening; runs until killed.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mount", action="append", default=[], help="/path=file.mp4")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--auth", choices=["basic", "digest"], default="basic")
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--no-repeat-params", action="store_true")
    a = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))
    mounts = server.get_mount_points()
    for m in a.mount:
        path, _, file = m.partition("=")
        codec = "h265" if "h265" in file else "h264"
        # MP4 carries the timestamps the server paces by (and RTP carries);
        # raw Annex B has none. scripts/setup.sh writes 56 s MP4s (the demo
        # four times over), long enough for every test.
        interval = 0 if a.no_repeat_params else -1
        pay = f"rtp{codec}pay pt=96 config-interval={interval}"
        if a.loss > 0:
            # The element named pay0 is the stream's RTP source: here the
            # dropper behind the payloader.
            pay += f" ! identity drop-probability={a.loss} name=pay0"
        else:
            pay += " name=pay0"
        launch = f"( filesrc location={file} ! qtdemux ! {codec}parse ! {pay} )"
        if file == "pattern:mjpeg":
            # A camera that offers only MJPEG (RFC 2435): a moving test
            # pattern, JPEG-encoded live.
            launch = (
                "( videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=640,height=480,framerate=25/1 "
                "! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
            )

        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        if a.user:
            role = Gst.Structure.from_string(
                "user, media.factory.access=(boolean)true, media.factory.construct=(boolean)true"
            )[0]
            factory.add_role_from_structure(role)
        mounts.add_factory(path, factory)
    if a.user:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "user")
        if a.auth == "digest":
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
            auth.add_digest(a.user, a.password, token)
        else:
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
        server.set_auth(auth)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{a.port}", file=sys.stderr)
        sys.exit(1)
    print(f"ready {a.port}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
