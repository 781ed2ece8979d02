"""Reading and writing image files: Pillow <-> arrays with metadata kept, atomic writes."""
