package namesdata // breaks: the name differs from the folder
