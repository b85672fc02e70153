"""Exports of a trained run: videos along camera paths, meshes and point clouds.

``video`` (render_path, write_video, render_video), ``mesh`` (export_mesh, save_mesh),
``tsdf`` (TSDF fusion of rendered depth), ``pointcloud`` (export_pointcloud), ``colormap``.
Modules are imported on use: meshes need trimesh and scikit-image, videos imageio-ffmpeg.
"""
